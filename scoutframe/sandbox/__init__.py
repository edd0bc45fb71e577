"""A local emulator of the SphereScout API."""
