"""The hub's web pages: server-rendered HTML and charts."""
