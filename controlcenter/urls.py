from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from controlcenter import views

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("api/", include("api.urls")),
    path("", include("metrics.urls")),
    path("", include("automation.urls")),
    path("", include("runs.urls")),
    path("", include("runlogs.urls")),
    path("", include("sharing.urls")),
    path("", include("targets.urls")),
    path("", include("audit.urls")),
    path("", include("scenarios.urls")),
]

handler403 = "controlcenter.views.forbidden"
handler404 = "controlcenter.views.not_found"
