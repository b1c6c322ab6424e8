import json

from django.http import HttpResponse
from django.urls import path


def edge(request):
    doc = {"is_secure": request.is_secure(), "absolute_uri": request.build_absolute_uri(),
           "script_name": request.META.get("SCRIPT_NAME"), "path": request.path,
           "remote_addr": request.META.get("REMOTE_ADDR")}
    return HttpResponse(json.dumps(doc), content_type="application/json")


urlpatterns = [path("edge/", edge)]
