"""Workflow stages: one module per rule file, each function taking the Snakemake job object.

Stage functions only read the job's inputs, params and config, call the package's tested
functions and write the job's outputs; they hold no analysis logic of their own.
"""
