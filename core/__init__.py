"""What the API, the workflows and the activities all share: names, contracts, settings."""
