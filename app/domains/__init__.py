"""One package per upstream system. The app lists them explicitly in ``app.main.DOMAINS``."""
