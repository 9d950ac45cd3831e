"""The lab's web page (``active serve``, docs/web.md): upload a sample's videos, follow the
analysis, read and print its report, find past samples.

The top layer of the package: it uses the analysis, the batch catalogue, inference, data and
utils, never training or torch. One module per job:

    app.py       the FastAPI application: settings, start-up and shut-down, security headers,
                 error pages (never a stack trace), the access token
    routes.py    the pages and downloads
    auth.py      the optional access token (header or a cookie set by the login form)
    uploads.py   the upload form read from the request stream, size-limited, checked by content
    forms.py     the form's fields (sample id, calibration, profile) checked, each error naming
                 its field
    store.py     the jobs in the catalogue's ``jobs`` table
    runner.py    jobs run in worker processes, at most N at a time; restart recovery
    worker.py    what a worker process runs: ``active.analysis.run.analyze`` with its progress
    views.py     the report page's headline numbers, each with its unit and meaning

Nothing is imported here, so a worker process that imports :mod:`active.web.worker` does not
load the web framework.
"""
