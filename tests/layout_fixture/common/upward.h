#pragma once
// A planted upward include: check_layering.py must refuse it (ctest layout.layering_catches).
#include "api/controller_api.h"
