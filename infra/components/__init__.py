"""One ComponentResource per service; each declares its Docker (staging) or Kubernetes (production)
children, parented to it and exposed as typed attributes."""
