"""`xthink view`: the data a page shows (data.py) and the self-contained HTML page (page.py, assets/)."""
