"""The project package: settings, Celery app, URLs, tenancy (workspaces, members, API keys).

The Celery app (esp.celery) is loaded by EspConfig.ready(), not here: importing this package
(as the launcher does) must not choose a settings module for the processes it starts."""
