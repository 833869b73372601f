"""Test support: tiny random-weight models and forced decoding, loaded through the real code paths."""
