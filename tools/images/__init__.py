"""Images: open and crop (pixels.py), the content store (store.py), client inputs (inputs.py)."""
