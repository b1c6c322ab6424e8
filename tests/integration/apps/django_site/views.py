import hashlib
import os

from django.http import (FileResponse, HttpResponse, HttpResponseBadRequest, JsonResponse,
                         StreamingHttpResponse)
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt


def index(request):
    return HttpResponse("Django on alicorn", content_type="text/plain")


def hello(request, name):
    return render(request, "hello.html", {"name": name, "items": request.GET.getlist("item")})


@csrf_exempt
def echo(request):
    if request.method != "POST":
        return HttpResponseBadRequest("POST only")
    body = request.body if not request.FILES else b""
    files = {name: {"name": f.name, "size": f.size,
                    "sha256": hashlib.sha256(f.read()).hexdigest()}
             for name, f in request.FILES.items()}
    return JsonResponse({
        "method": request.method,
        "post": {k: request.POST.getlist(k) for k in request.POST},
        "files": files,
        "content_type": request.content_type,
        "body_length": len(body),
        "script_name": request.META.get("SCRIPT_NAME"),
        "path": request.path,
        "path_info": request.path_info,
    })


def csrf_protected(request):
    # not exempt: a POST without a CSRF token is refused with 403 by CsrfViewMiddleware
    return HttpResponse("accepted", content_type="text/plain")


def stream(request):
    count = int(request.GET.get("count", "50"))

    def generate():
        for i in range(count):
            yield "row %d\n" % i

    return StreamingHttpResponse(generate(), content_type="text/plain")


def file(request):
    path = request.GET["path"]
    if not os.path.isabs(path):
        return HttpResponseBadRequest("absolute path required")
    return FileResponse(open(path, "rb"), content_type="application/octet-stream")
