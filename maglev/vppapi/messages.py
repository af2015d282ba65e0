"""VPP's message table from the API JSON files, numbered as VPP numbers it.

memclnt's messages come first, 1-based in file order (the client hard-codes
sockclnt_create = 15 and its reply = 16), then every other module's messages in
file order, modules sorted by name. Nothing is hard-coded but that rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vpp_papi.vpp_papi import VPPApiJSONFiles

# Messages a v26.06 VPP does not have (lb.api 1.1.0).
V2606_MISSING = frozenset(
    {
        "lb_conf_get",
        "lb_conf_get_reply",
        "lb_add_del_as_v2",
        "lb_add_del_as_v2_reply",
        "lb_as_set_weight",
        "lb_as_set_weight_reply",
        "lb_as_v2_dump",
        "lb_as_v2_details",
    }
)


class ApiDefinitions:
    def __init__(self, api_dir: Path, drop: frozenset[str] = frozenset()) -> None:
        files = sorted(api_dir.rglob("*.api.json"), key=lambda p: (p.name != "memclnt.api.json", p.name))
        self.files = files
        self.messages: dict[str, Any] = {}
        self.services: dict[str, dict[str, Any]] = {}
        self.ids: dict[str, int] = {}
        self.names: dict[int, str] = {}
        next_id = 1
        for path in files:
            with open(path) as f:
                messages, services = VPPApiJSONFiles.process_json_file(f)
            order = [m[0] for m in json.loads(path.read_text()).get("messages", [])]
            self.services.update(services)
            for name in order:
                if name not in messages:
                    continue
                self.messages[name] = messages[name]
                if name in drop:
                    continue
                self.ids[name] = next_id
                self.names[next_id] = name
                next_id += 1
        if self.ids.get("sockclnt_create") != 15 or self.ids.get("sockclnt_create_reply") != 16:
            raise ValueError(f"{api_dir}: memclnt.api.json does not number sockclnt_create 15 as VPP does")

    def table(self) -> list[dict[str, Any]]:
        return [{"index": i, "name": f"{n}_{self.messages[n].crc[2:]}"} for n, i in self.ids.items()]

    def reply_of(self, name: str) -> str | None:
        service = self.services.get(name)
        return service.get("reply") if service else None
