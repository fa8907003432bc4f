"""The original's deployment status names."""

deployment_queued = "Queued"
deployment_running = "Running"
deployment_completed = "Completed"
deployment_error = "Error"
