"""The agent: runs tasks on the target (VM guest or board) and reports events."""
