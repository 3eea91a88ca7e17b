"""Small widgets that each draw one thing; `app.main_window` assembles them."""

import app.qt_workarounds  # noqa: F401  (before any Qt drawing)
