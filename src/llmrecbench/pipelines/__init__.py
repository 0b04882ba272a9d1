"""Train and evaluate one cell of each task: the heavy halves of ``llmrecbench.tasks`` (torch imported here)."""
