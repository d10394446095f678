"""Helpers shared by the test suites: JUnit XML validation, a headless-browser page loader."""
