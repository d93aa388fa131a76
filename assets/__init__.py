"""The asset and check definitions of the medallion layers, the model and the online store."""
