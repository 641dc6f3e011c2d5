"""Server-rendered web pages (Jinja2). Sessions use an HttpOnly cookie that
authorises reads only; changes go through the API with a bearer token."""
