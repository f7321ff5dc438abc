"""The Conv2d course's grading system: release, check and trusted autograding.

Grading reads as stages, one module each: validate -> execute -> score -> record.
"""
