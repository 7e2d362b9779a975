"""The series engine: enrolling (triggers), walking enrollments through their steps (the
runner), and what incoming events and contact changes do to enrollments (events)."""
