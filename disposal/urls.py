from django.urls import path

from disposal import center_views, connector_views, entity_views, handle_views

app_name = "disposal"

urlpatterns = [
    # The Handle panel of a security event and its Message Preview.
    path("events/<int:event_id>/handle/", handle_views.handle, name="handle"),
    path(
        "events/<int:event_id>/handle/preview/",
        handle_views.handle_preview,
        name="handle_preview",
    ),
]

# The account's connector settings (Alibaba Cloud, webhook or the simulated cloud).
urlpatterns += [
    path(
        "accounts/<int:account_id>/connector/",
        connector_views.connector_settings,
        name="connector_settings",
    ),
]

# The Disposal Center, its tasks and policies, and the simulated cloud.
urlpatterns += [
    path("disposal/", center_views.center, name="center"),
    path("disposal/tasks/<int:task_id>/", center_views.task_detail, name="task"),
    path("disposal/tasks/<int:task_id>/retry/", center_views.task_retry, name="task_retry"),
    path("disposal/tasks/<int:task_id>/unblock/", center_views.task_unblock, name="task_unblock"),
    path("disposal/policies/<int:policy_id>/edit/", center_views.policy_edit, name="policy_edit"),
    path("disposal/simulated-cloud/", center_views.simulated_cloud, name="simulated_cloud"),
    path(
        "disposal/simulated-cloud/failures/<int:failure_id>/remove/",
        center_views.simulated_failure_remove,
        name="simulated_failure_remove",
    ),
]

# The entity page: context, threat intelligence, related alerts and events, handling.
urlpatterns += [
    path("entities/<str:entity_type>/<str:digest>/", entity_views.entity_detail, name="entity"),
]
