"""artifact_svc: trained model artifacts, their quality metrics and downloads."""
