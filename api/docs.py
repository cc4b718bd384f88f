"""The API's own description: the OpenAPI document flask-openapi3 writes from the routes, a
Swagger UI page that works offline (its assets come with flask-openapi3-swagger and are
served from here, no CDN), and a page per problem type. None of them needs a key."""

from pathlib import Path

import flask_openapi3_swagger
from flask import Blueprint, abort, current_app, jsonify, render_template_string, send_from_directory

from api.problems import TYPES

SWAGGER_ASSETS = Path(flask_openapi3_swagger.__file__).parent / "templates" / "swagger"

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Purchases API · v1</title>
  <link rel="stylesheet" href="/api/v1/docs/css/swagger-ui.css">
  <style>body { margin: 0; background: #fafafa; }</style>
</head>
<body>
  <div id="swagger-ui"><noscript>The API's description is <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</noscript></div>
  <script src="/api/v1/docs/js/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "/api/v1/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
                                 presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"});
  </script>
</body>
</html>
"""


def blueprint() -> Blueprint:
    docs = Blueprint("api_docs", __name__, url_prefix="/api/v1")

    @docs.get("/openapi.json")
    def openapi():
        return jsonify(current_app.api_doc)

    @docs.get("/docs")
    def page():
        return render_template_string(PAGE)

    @docs.get("/docs/<path:name>")
    def asset(name):
        return send_from_directory(SWAGGER_ASSETS, name, max_age=86400)

    @docs.get("/problems/<slug>")
    def problem_type(slug):
        if slug not in TYPES:
            abort(404)
        status, title, meaning = TYPES[slug]
        return jsonify(type=f"/api/v1/problems/{slug}", status=status, title=title, description=meaning)

    return docs
