"""Pictures and widgets: the live table, the final view, summaries."""
