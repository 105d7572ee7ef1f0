# Writes OUTPUT: a C++ source defining `const char* const NAME` (in
# namespace NAMESPACE) as the text of INPUT, for assets built into a program.
# Usage: cmake -DINPUT=... -DOUTPUT=... -DNAME=... -DNAMESPACE=... -P embed_text.cmake
file(READ "${INPUT}" text)
string(FIND "${text}" ")actortrain_asset\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} holds the raw string's closing delimiter")
endif()
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by cmake/embed_text.cmake; do not edit.\n"
  "namespace ${NAMESPACE} {\n"
  "extern const char* const ${NAME};\n"
  "const char* const ${NAME} = R\"actortrain_asset(${text})actortrain_asset\";\n"
  "} // namespace ${NAMESPACE}\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUTPUT}.tmp"
                        "${OUTPUT}")
file(REMOVE "${OUTPUT}.tmp")
