"""One package per upstream system, each exporting its ``DOMAIN`` (:mod:`app.core.domain`); the catalog's
``domains:`` section names the packages, and nothing else does."""
