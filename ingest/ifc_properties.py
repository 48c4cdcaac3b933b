"""Attributes of IFC elements and facilities gathered in bulk: property sets, types, materials, containment.

Property sets are read once per definition (relationships walked once for the whole model) instead of
calling ``get_psets`` per element: shared type and occurrence sets are converted a single time.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import ifcopenshell
import ifcopenshell.util.element

FACILITY_CLASSES = ("IfcBuilding", "IfcBridge", "IfcRoad", "IfcRailway", "IfcTunnel", "IfcMarineFacility")


def _clean(definition: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in definition.items() if k != "id"}


def _definitions(rel_def: Any) -> list[Any]:
    if rel_def is None:
        return []
    if isinstance(rel_def, tuple | list):
        return list(rel_def)
    return [rel_def]


_SIMPLE_QUANTITIES = frozenset(
    {
        "IfcQuantityLength",
        "IfcQuantityArea",
        "IfcQuantityVolume",
        "IfcQuantityCount",
        "IfcQuantityWeight",
        "IfcQuantityTime",
        "IfcQuantityNumber",
    }
)


def _simple_values(definition: Any) -> dict[str, Any] | None:
    """Values of a property set of single values or a quantity set of simple quantities, else ``None``.

    Attributes are read by position (several times faster than by name in ifcopenshell): IfcPropertySet
    HasProperties = 4, IfcElementQuantity Quantities = 5, IfcPropertySingleValue Name = 0 / NominalValue = 2,
    IfcPhysicalSimpleQuantity Name = 0 / value = 3, the same in IFC2X3, IFC4 and IFC4X3.
    """
    values: dict[str, Any] = {}
    kind = definition.is_a()
    if kind == "IfcPropertySet":
        for prop in definition[4] or ():
            if prop.is_a() != "IfcPropertySingleValue":
                return None
            nominal = prop[2]
            values[prop[0]] = nominal.wrappedValue if nominal is not None else None
        return values
    if kind == "IfcElementQuantity":
        for quantity in definition[5] or ():
            if quantity.is_a() not in _SIMPLE_QUANTITIES:
                return None
            values[quantity[0]] = quantity[3]
        return values
    return None


def _as_dict(definition: Any, cache: dict[int, tuple[str, dict[str, Any]] | None]) -> tuple[str, dict[str, Any]] | None:
    key = definition.id()
    if key in cache:
        return cache[key]
    result: tuple[str, dict[str, Any]] | None = None
    if (
        definition.is_a("IfcPropertySet")
        or definition.is_a("IfcElementQuantity")
        or definition.is_a("IfcPreDefinedPropertySet")
    ):
        values = _simple_values(definition)
        if values is None:
            try:
                values = ifcopenshell.util.element.get_property_definition(definition)
            except Exception:  # a malformed property set must not stop the model; it is just left out
                values = None
        if isinstance(values, dict):
            result = (str(definition.Name or definition.is_a()), _clean(values))
    cache[key] = result
    return result


def property_sets(model: ifcopenshell.file) -> dict[int, dict[str, dict[str, Any]]]:
    """Property and quantity sets of every object, by step id: type sets first, occurrence sets override."""
    cache: dict[int, tuple[str, dict[str, Any]] | None] = {}
    by_object: dict[int, dict[str, dict[str, Any]]] = {}
    type_sets: dict[int, dict[str, dict[str, Any]]] = {}
    for type_object in model.by_type("IfcTypeObject"):
        sets: dict[str, dict[str, Any]] = {}
        for definition in type_object.HasPropertySets or ():
            found = _as_dict(definition, cache)
            if found is not None:
                sets[found[0]] = found[1]
        if sets:
            type_sets[type_object.id()] = sets
    type_rel = "IfcRelDefinesByType"
    for rel in model.by_type(type_rel):
        shared = type_sets.get(rel.RelatingType.id()) if rel.RelatingType is not None else None
        if not shared:
            continue
        for obj in rel.RelatedObjects or ():
            by_object.setdefault(obj.id(), {}).update({k: dict(v) for k, v in shared.items()})
    for rel in model.by_type("IfcRelDefinesByProperties"):
        for definition in _definitions(rel.RelatingPropertyDefinition):
            found = _as_dict(definition, cache)
            if found is None:
                continue
            name, values = found
            for obj in rel.RelatedObjects or ():
                target = by_object.setdefault(obj.id(), {})
                target[name] = {**target.get(name, {}), **values}
    return by_object


def json_default(value: Any) -> Any:
    """JSON fallback for property values (entity references, dates, tuples)."""
    if isinstance(value, ifcopenshell.entity_instance):
        return value.is_a() + (f" {value.Name}" if hasattr(value, "Name") and value.Name else "")
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def properties_json(sets: dict[str, dict[str, Any]]) -> str:
    """Property sets as JSON text (UTF-8 names and values kept as they are)."""
    return json.dumps(sets, ensure_ascii=False, default=json_default, allow_nan=False) if sets else "{}"


def material_label(material: ifcopenshell.entity_instance | None) -> str | None:
    """A readable name of a material assignment: material, layer/profile/constituent set or list."""
    if material is None:
        return None
    if material.is_a("IfcMaterialLayerSetUsage"):
        return material_label(material.ForLayerSet)
    if material.is_a("IfcMaterialProfileSetUsage"):
        return material_label(material.ForProfileSet)
    name = getattr(material, "Name", None) or getattr(material, "LayerSetName", None)
    if name:
        return str(name)
    if material.is_a("IfcMaterialLayerSet"):
        names = [layer.Material.Name for layer in material.MaterialLayers or () if layer.Material is not None]
        return " / ".join(n for n in names if n) or None
    if material.is_a("IfcMaterialList"):
        return " / ".join(m.Name for m in material.Materials or () if m.Name) or None
    return None


@dataclass
class Lookups:
    """Type names and materials of every object, by step id, from one walk over the relationships."""

    type_of: dict[int, int] = field(default_factory=dict)
    type_names: dict[int, str | None] = field(default_factory=dict)
    materials: dict[int, str | None] = field(default_factory=dict)

    @classmethod
    def of(cls, model: ifcopenshell.file) -> Lookups:
        """Walk IfcRelDefinesByType and IfcRelAssociatesMaterial once."""
        found = cls()
        for rel in model.by_type("IfcRelDefinesByType"):
            relating = rel.RelatingType
            if relating is None:
                continue
            found.type_names[relating.id()] = str(relating.Name) if relating.Name else None
            for obj in rel.RelatedObjects or ():
                found.type_of[obj.id()] = relating.id()
        for rel in model.by_type("IfcRelAssociatesMaterial"):
            try:
                label = material_label(rel.RelatingMaterial)
            except (AttributeError, RuntimeError):  # unusual material entities: no label rather than a failure
                label = None
            for obj in rel.RelatedObjects or ():
                found.materials[obj.id()] = label
        return found

    def type_name(self, step_id: int) -> str | None:
        """The name of the object's type, if it has one."""
        type_id = self.type_of.get(step_id)
        return self.type_names.get(type_id) if type_id is not None else None

    def material(self, step_id: int) -> str | None:
        """The object's material, else its type's."""
        own = self.materials.get(step_id)
        if own is not None:
            return own
        type_id = self.type_of.get(step_id)
        return self.materials.get(type_id) if type_id is not None else None


@dataclass
class Spatial:
    """Containment of a model: each object's parent, for storeys and buildings/facilities."""

    parent: dict[int, ifcopenshell.entity_instance] = field(default_factory=dict)
    _storey: dict[int, ifcopenshell.entity_instance | None] = field(default_factory=dict)
    _facility: dict[int, ifcopenshell.entity_instance | None] = field(default_factory=dict)

    @classmethod
    def of(cls, model: ifcopenshell.file) -> Spatial:
        """Walk containment, aggregation, nesting and opening fillings once."""
        parent: dict[int, ifcopenshell.entity_instance] = {}
        for rel in model.by_type("IfcRelAggregates"):
            for child in rel.RelatedObjects or ():
                parent[child.id()] = rel.RelatingObject
        for rel in model.by_type("IfcRelNests"):
            for child in rel.RelatedObjects or ():
                parent.setdefault(child.id(), rel.RelatingObject)
        for rel in model.by_type("IfcRelFillsElement"):
            opening = rel.RelatingOpeningElement
            voids = getattr(opening, "VoidsElements", None) or ()
            for void in voids:
                parent.setdefault(rel.RelatedBuildingElement.id(), void.RelatingBuildingElement)
        for rel in model.by_type("IfcRelContainedInSpatialStructure"):
            for child in rel.RelatedElements or ():
                parent[child.id()] = rel.RelatingStructure
        return cls(parent=parent)

    def _ancestor(
        self, obj: ifcopenshell.entity_instance, match: tuple[str, ...], memo: dict[int, Any]
    ) -> ifcopenshell.entity_instance | None:
        chain: list[int] = []
        current: ifcopenshell.entity_instance | None = obj
        found: ifcopenshell.entity_instance | None = None
        seen: set[int] = set()
        while current is not None:
            key = current.id()
            if key in memo:
                found = memo[key]
                break
            if key in seen:
                break
            seen.add(key)
            if current is not obj and any(current.is_a(c) for c in match):
                found = current
                break
            chain.append(key)
            current = self.parent.get(key)
        for key in chain:
            memo[key] = found
        return found

    def storey_of(self, obj: ifcopenshell.entity_instance) -> ifcopenshell.entity_instance | None:
        """The nearest storey (or, for IFC 4.3 facilities, facility part) containing an object."""
        return self._ancestor(obj, ("IfcBuildingStorey", "IfcFacilityPart"), self._storey)

    def facility_of(self, obj: ifcopenshell.entity_instance) -> ifcopenshell.entity_instance | None:
        """The nearest building or IFC 4.3 facility containing an object."""
        return self._ancestor(obj, FACILITY_CLASSES, self._facility)


def facilities(model: ifcopenshell.file) -> list[ifcopenshell.entity_instance]:
    """Every IfcBuilding and IFC 4.3 facility (bridge, road, railway, tunnel, marine facility) of a model."""
    found: dict[int, ifcopenshell.entity_instance] = {}
    for cls in FACILITY_CLASSES:
        try:
            for item in model.by_type(cls):
                found[item.id()] = item
        except RuntimeError:  # the class does not exist in this schema (IFC2X3/IFC4)
            continue
    return list(found.values())


def address_of(facility: ifcopenshell.entity_instance) -> str | None:
    """A one-line postal address of a building, when it has one."""
    address = getattr(facility, "BuildingAddress", None)
    if address is None:
        return None
    parts = [*(address.AddressLines or ()), address.PostalCode, address.Town, address.Region, address.Country]
    text = ", ".join(str(p) for p in parts if p)
    return text or None


def _same(a: ifcopenshell.entity_instance | None, b: ifcopenshell.entity_instance) -> bool:
    return a is not None and a.id() == b.id()


def _area(sets: dict[str, dict[str, Any]], names: tuple[str, ...]) -> float | None:
    for pset in sets.values():
        for name in names:
            value = pset.get(name)
            if isinstance(value, int | float) and value > 0:
                return float(value)
    return None


def gross_floor_area(
    facility: ifcopenshell.entity_instance,
    spatial: Spatial,
    sets: dict[int, dict[str, dict[str, Any]]],
    model: ifcopenshell.file,
) -> float | None:
    """Gross floor area (m²) from quantity sets: the building's, else its storeys' sum, else its spaces' sum."""
    own = _area(sets.get(facility.id(), {}), ("GrossFloorArea",))
    if own is not None:
        return own
    for cls, names in (("IfcBuildingStorey", ("GrossFloorArea",)), ("IfcSpace", ("GrossFloorArea", "NetFloorArea"))):
        total = 0.0
        for item in model.by_type(cls):
            if _same(spatial.facility_of(item), facility):
                total += _area(sets.get(item.id(), {}), names) or 0.0
        if total > 0:
            return total
    return None


def storey_count(facility: ifcopenshell.entity_instance, spatial: Spatial, model: ifcopenshell.file) -> int | None:
    """Number of IfcBuildingStorey in a building (``None`` for facilities without storeys)."""
    count = sum(1 for s in model.by_type("IfcBuildingStorey") if _same(spatial.facility_of(s), facility))
    return count or None
