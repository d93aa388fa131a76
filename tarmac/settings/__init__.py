"""The settings file (`tarmac.yaml`): its loader and the typed sections it validates into."""
