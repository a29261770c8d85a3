from django.contrib import admin
from django.urls import path

admin.site.site_header = "carebell"
admin.site.site_title = "carebell"
admin.site.index_title = "Patient messaging"

urlpatterns = [
    path("admin/", admin.site.urls),
]
