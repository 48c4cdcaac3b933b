"""CIM+ analyses computed in PostGIS: the urban health check (城市体检) and urban safety overlays.

* :mod:`cim.analysis.indicators`: the documented indicator registry.
* :mod:`cim.analysis.health_check`: :func:`~cim.analysis.health_check.run_health_check`.
* :mod:`cim.analysis.fire`: 5-minute fire-rescue reach over the road network.
* :mod:`cim.analysis.flood`: connected "bathtub" inundation on the DEM.
* :mod:`cim.analysis.safety`: gas-pipeline proximity and the dangerous-house map.
* :mod:`cim.analysis.runs`: storage of runs and results (``analysis_run`` / ``analysis_result``).
"""
