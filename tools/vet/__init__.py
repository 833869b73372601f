"""Visual extraction tuning (VET), all of it: sources, the teacher's pairs, the resumable data run, the dataset
folder, the training collator and the trainer (`xthink vet-data`, `xthink vet-train`; docs/vet.md).

It sits above the perception call (tools/perception.py) so a training pair is prepared exactly as an
inference call is, and below the agent: nothing here knows about graphs or evals.
"""
