"""The achievements engine: pure Python rules over member stats; imports nothing from discord or storage."""
