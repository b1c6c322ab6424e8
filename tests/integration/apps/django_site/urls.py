from django.urls import path

import views

urlpatterns = [
    path("", views.index),
    path("hello/<str:name>/", views.hello),
    path("echo/", views.echo),
    path("stream/", views.stream),
    path("file/", views.file),
    path("csrf-protected/", views.csrf_protected),
]
