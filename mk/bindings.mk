# The Java and Node.js wrappers (bindings/java, bindings/node); included at the end of the
# Makefile (which defines CARGO, BUILD, DEBUG, EMULATOR and the release target).
#
#   make java        build/java/findity-auth-VERSION.jar (+ pom.xml): javac/jar, JNA from Debian
#   make test-java   the JUnit 5 suite (Debian's junit5) against the emulator, on that jar
#   make npm         build/npm/findity-auth-VERSION.tgz (npm pack; koffi from npm)
#   make test-node   the node:test suite against the emulator, on that tarball installed into an
#                    empty folder; then one token request across Java, Node and Python processes
#                    sharing a file store

.PHONY: java test-java npm test-node

java: release
	bash scripts/java.sh

test-java: java
	$(CARGO) build -p findity-emulator
	FINDITY_EMULATOR=$(CURDIR)/$(EMULATOR) bash scripts/test-java.sh

npm: release
	bash scripts/npm.sh

test-node: npm java
	$(CARGO) build -p findity-emulator
	FINDITY_EMULATOR=$(CURDIR)/$(EMULATOR) bash scripts/test-node.sh
