"""Model backends behind two small protocols (`Reasoner`, `Perceiver`); heavy imports stay inside each backend."""
