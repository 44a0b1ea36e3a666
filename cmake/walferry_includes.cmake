# Include trees: how "module/header.h" resolves (docs/development.md, "How
# includes resolve"). No target gets the repository root as an include path.
# Instead, per module, the build directory holds two trees of symlinks:
#
#   include/MODULE/public/MODULE/NAME.h -> MODULE/NAME.h  for each public header:
#       every MODULE/*.h not named *_internal.h. The module's library exports
#       this tree (PUBLIC), so a target sees it only when it links the module
#       (directly, or through a module whose public headers use it: DEPS).
#   include/MODULE/private/MODULE/NAME.h -> MODULE/NAME.h  for every header,
#       internals included. Only the module's own sources, its tests
#       (tests/MODULE/) and targets named by walferry_internals() get it.
#
# Symlinks to files, not to the directory, so "MODULE/../OTHER/x.h" leads
# nowhere. Both trees are rebuilt at every configure, and the globs are
# CONFIGURE_DEPENDS: a header added, removed or renamed (to or from
# *_internal.h) re-runs the configure at the next build by itself.
set(WALFERRY_INCLUDE_ROOT ${PROJECT_BINARY_DIR}/include)

# Makes DEST hold one symlink per file in FILES (and nothing else); with
# PUBLIC_ONLY, none for a *_internal.h.
function(_walferry_link_headers dest public_only)
  file(GLOB stale LIST_DIRECTORIES true ${dest}/*)
  if(stale)
    file(REMOVE ${stale})  # removes symlinks, never what they point to
  endif()
  file(MAKE_DIRECTORY ${dest})
  foreach(h ${ARGN})
    get_filename_component(base ${h} NAME)
    if(NOT (public_only AND base MATCHES "_internal\\.h$"))
      file(CREATE_LINK ${h} ${dest}/${base} SYMBOLIC)
    endif()
  endforeach()
endfunction()

# walferry_include_trees(NAME [SUBDIR DIR]): the two trees of NAME/ (of its
# subdirectory DIR only, e.g. tests/support, when given).
function(walferry_include_trees name)
  cmake_parse_arguments(T "" "SUBDIR" "" ${ARGN})
  set(rel ${name})
  if(T_SUBDIR)
    set(rel ${name}/${T_SUBDIR})
  endif()
  set(root ${WALFERRY_INCLUDE_ROOT}/${name})
  file(GLOB headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/${rel}/*.h)
  _walferry_link_headers(${root}/public/${rel} TRUE ${headers})
  _walferry_link_headers(${root}/private/${rel} FALSE ${headers})
endfunction()

# walferry_internals(TARGET MODULE): TARGET may include MODULE's internal
# headers (MODULE's own sources, its tests, a fuzz target of an internal parser).
function(walferry_internals target name)
  if(NOT IS_DIRECTORY ${WALFERRY_INCLUDE_ROOT}/${name}/private)
    message(FATAL_ERROR "walferry_internals(${target} ${name}): no include tree for module '${name}'")
  endif()
  target_include_directories(${target} BEFORE PRIVATE ${WALFERRY_INCLUDE_ROOT}/${name}/private)
endfunction()

# walferry_module(NAME SOURCES ... DEPS ... PRIVATE_DEPS ...): the library
# walferry_NAME. DEPS are the libraries its public headers include: their
# headers pass on to whoever links NAME. PRIVATE_DEPS are used by its .cc and
# *_internal.h files only: linked, but their headers stay hidden from NAME's
# dependants.
function(walferry_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  walferry_include_trees(${name})
  set(root ${WALFERRY_INCLUDE_ROOT}/${name})
  if(M_SOURCES)
    add_library(walferry_${name} STATIC ${M_SOURCES})
    target_include_directories(walferry_${name} PUBLIC ${root}/public)
    walferry_internals(walferry_${name} ${name})
    target_link_libraries(walferry_${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  else()  # module not written yet
    add_library(walferry_${name} INTERFACE)
    target_include_directories(walferry_${name} INTERFACE ${root}/public)
    target_link_libraries(walferry_${name} INTERFACE ${M_DEPS} ${M_PRIVATE_DEPS})
  endif()
endfunction()
