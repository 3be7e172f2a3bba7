"""The front ends over `app.service`: the command line, the HTTP API and the chat page."""
