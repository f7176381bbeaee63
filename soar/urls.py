from django.urls import path

from soar import bulk_views, views

app_name = "soar"

urlpatterns = [
    path("soar/bulk/", bulk_views.bulk_start, name="bulk_start"),
    path("soar/bulk/<int:bulk_job_id>/", bulk_views.bulk_job, name="bulk_job"),
    path("soar/playbooks/", views.playbooks, name="playbooks"),
    path("soar/playbooks/new/", views.playbook_form, name="playbook_new"),
    path("soar/playbooks/<int:playbook_id>/", views.playbook, name="playbook"),
    path("soar/playbooks/<int:playbook_id>/edit/", views.playbook_form, name="playbook_edit"),
    path("soar/playbooks/<int:playbook_id>/run/", views.playbook_run, name="playbook_run"),
    path("soar/rules/", views.rules, name="rules"),
    path("soar/rules/new/", views.rule_form, name="rule_new"),
    path("soar/rules/<int:automation_rule_id>/edit/", views.rule_form, name="rule_edit"),
    path("soar/rules/<int:automation_rule_id>/delete/", views.rule_delete, name="rule_delete"),
    path("soar/rules/<int:automation_rule_id>/dry-run/", views.rule_dry_run, name="rule_dry_run"),
    path("soar/automation/pause/", views.automation_pause, name="automation_pause"),
    path("soar/runs/", views.run_list, name="runs"),
    path("soar/runs/<int:run_id>/", views.run_detail, name="run"),
    path("soar/runs/<int:run_id>/rerun/", views.run_rerun, name="run_rerun"),
    path("soar/runs/<int:run_id>/approve/", views.run_approve, name="run_approve"),
    path("soar/runs/<int:run_id>/reject/", views.run_reject, name="run_reject"),
    path("soar/approvals/", views.approvals, name="approvals"),
]
