"""``avemo serve``: a local web page to analyse videos and watch their emotions over time (needs the ``web``
extra: ``pip install 'avemo[web]'``). :mod:`avemo.web.analyses` keeps the analyses and runs them one at a time;
:mod:`avemo.web.app` is the FastAPI app (the page and its HTTP interface); ``static/`` is the page itself,
plain HTML, CSS and JavaScript with nothing fetched from elsewhere."""
