"""Visual extraction tuning (VET): the dataset format the perceiver trains on, and the training itself.

Data generation, which reads benchmark-style sources and calls a teacher, lives with the other resumable
record runs in evals/ (tools/vet/teacher.py, tools/vet/run.py); this package only needs the pairs it writes.
"""
