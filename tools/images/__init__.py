"""Images: open and crop (pixels.py); the content store (store.py) and keeping it bounded (store_pruning.py);
client images (acquire.py) under the server's policy (inputs.py), URLs fetched (url_fetch.py) only to allowed
addresses (address_check.py)."""
