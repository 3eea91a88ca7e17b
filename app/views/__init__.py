"""Small widgets that each draw one thing; `app.main_window` assembles them."""
