"""Visual extraction tuning (VET): the dataset format the perceiver trains on, and the training itself.

Data generation, which reads benchmark-style sources and calls a teacher, lives with the other resumable
record runs in evals/ (evals/vet_data.py, evals/vet_run.py); this package only needs the pairs it writes.
"""
