def navigation(request):
    """The signed-in user's projects, for the project switcher in the top bar."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    from scenarios.models import Project

    return {"nav_projects": Project.objects.for_user(request.user).only("name", "slug")}
