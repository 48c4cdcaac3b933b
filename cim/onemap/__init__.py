"""The province "one map": administrative names, the overview, labels and the offline base map."""
