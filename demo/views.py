"""The demo's pages. Every POST must carry the CSRF token of
``request.session`` (``require_csrf`` is on): without it, Pyramid answers
400 Bad Request before the view runs."""

from pyramid.httpexceptions import HTTPBadRequest, HTTPSeeOther
from pyramid.response import Response
from pyramid.view import view_config

from . import templates


@view_config(route_name='home', request_method='GET')
def home(request):
    main = request.session_multi['main']  # Redis; also request.session
    visits = main['visits'] = main.get('visits', 0) + 1
    prefs = request.session_multi['prefs']  # signed cookie
    theme = prefs.get('theme', templates.DEFAULT_THEME)
    csrf_token = request.session.get_csrf_token()
    accessed = sorted(request.session_multi)
    return Response(
        templates.home(request, visits, theme, csrf_token, accessed)
    )


@view_config(route_name='theme', request_method='POST')
def set_theme(request):
    theme = request.POST.get('theme')
    if theme not in templates.THEMES:
        raise HTTPBadRequest('unknown theme')
    request.session_multi['prefs']['theme'] = theme
    return HTTPSeeOther(request.route_url('home'))


@view_config(route_name='forget', request_method='POST')
def forget(request):
    request.session_multi.invalidate()
    return HTTPSeeOther(request.route_url('home'))


@view_config(route_name='about', request_method='GET')
def about(request):
    # request.session_multi costs nothing until a namespace is read
    return Response(templates.about(request, sorted(request.session_multi)))
