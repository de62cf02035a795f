"""How many Intercom conversations, parts and contacts of each real-world shape the demo data holds, and what the
mapper makes of them. Run: `.venv/bin/python scripts/intercom_shapes.py [--seed N] [--conversations N]`."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feedback_sources.emulator import Emulator, EmulatorConfig  # noqa: E402
from feedback_sources.sources.intercom.mapping import map_conversation  # noqa: E402
from feedback_sources.rules import DEFAULT_RULES  # noqa: E402


def main() -> None:
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--conversations", type=int, default=defaults.intercom_conversations)
    args = parser.parse_args()
    emulator = Emulator(EmulatorConfig(seed=args.seed, intercom_conversations=args.conversations))
    data = emulator.intercom
    for title, counts in data.shape_counts().items():
        print(f"{title}:")
        for shape, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            print(f"  {count:6d}  {shape}")
    mapped: Counter[str] = Counter()
    for conversation_id in data.all_conversation_ids():
        conversation = data.conversation(conversation_id)
        contact = data.contact(conversation["contacts"]["contacts"][0]["id"])
        record = map_conversation(conversation, contact, app_id=data.config.intercom_app_id_code, rules=DEFAULT_RULES)
        kept = len(record.metadata["customer_parts"])
        mapped["records"] += 1
        mapped["customer messages kept"] += kept
        mapped["records with no customer words"] += not record.content
        mapped["records with no title"] += record.title is None
        mapped["records with no tier"] += record.customer_tier is None
    print("records (mapped with their contact):")
    for shape, count in mapped.items():
        print(f"  {count:6d}  {shape}")


if __name__ == "__main__":
    main()
