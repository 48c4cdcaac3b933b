"""IoT sensing: OGC SensorThings API 1.1 over PostGIS, the MQTT extension through a private Mosquitto broker,
threshold alarms that feed the CIM+ analyses, and live updates for the viewer."""
