from django.urls import path

from soar import bulk_views

app_name = "soar"

urlpatterns = [
    path("soar/bulk/", bulk_views.bulk_start, name="bulk_start"),
    path("soar/bulk/<int:bulk_job_id>/", bulk_views.bulk_job, name="bulk_job"),
]
