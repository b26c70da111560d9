"""Releases: immutable builds of the service, deployed, promoted and rolled back per stack."""
