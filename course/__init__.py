"""Helpers for the Conv2d course notebooks: data, plots, TensorBoard and student-facing checks.

Nothing in this package is a solution to an exercise: checks compare a student's function with
torch, they never compute the answer in the student's place.
"""
